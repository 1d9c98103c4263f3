"""Forms of the privacy-team console's stores page. Secrets are a write-only field: never filled back in."""

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from memories.models import Store

CONFIG_HELP = {
    "mem0_platform": '{"host": "https://api.mem0.ai"} (optional "org_id", "project_id")',
    "mem0_oss": 'the dict given to Memory.from_config(): {"vector_store": {"provider": "qdrant", "config": {…}}, '
    '"history_db_path": "…"}',
}


def _json_object(value: str, field: str) -> dict[str, Any] | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{field} must be JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(parsed, dict):
        raise ValidationError(f"{field} must be a JSON object")
    return parsed


class WriteOnlyTextarea(forms.Textarea):
    """Never renders a value: a form shown again after an error does not echo the secrets back."""

    def format_value(self, value: Any) -> None:
        return None


class StoreForm(forms.Form):
    name = forms.CharField(
        label="Name", max_length=64, help_text="Lower-case letters, digits, '.', '_' or '-'; shown in proofs."
    )
    kind = forms.ChoiceField(
        label="Kind", choices=[(k, label) for k, label in Store.Kind.choices if k != Store.Kind.BUILTIN]
    )
    config = forms.CharField(
        label="Config (JSON)",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}),
        help_text="Mem0 Platform: "
        + CONFIG_HELP["mem0_platform"]
        + ". Mem0 OSS: "
        + CONFIG_HELP["mem0_oss"]
        + ". No credentials here.",
    )
    secrets = forms.CharField(
        label="Secrets (JSON)",
        required=False,
        widget=WriteOnlyTextarea(
            attrs={"rows": 2, "spellcheck": "false", "autocomplete": "off", "class": "mono"}
        ),
        help_text='Write-only, encrypted at rest, e.g. {"api_key": "…"}. Leave empty to keep the stored secrets.',
    )
    enabled = forms.BooleanField(
        label="Enabled: every erasure reaches this store", required=False, initial=True
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing:
            del self.fields["kind"]  # a store's kind is fixed: add a new store instead

    def clean_config(self) -> dict[str, Any]:
        return _json_object(self.cleaned_data["config"], "config") or {}

    def clean_secrets(self) -> dict[str, Any] | None:
        return _json_object(self.cleaned_data.get("secrets", ""), "secrets")
