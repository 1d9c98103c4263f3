"""Forms of the web pages: the data subject's request form and the privacy team's action forms.

Forms only validate and normalise input; every write goes through erasure.services / memories.services.
"""

import json
from datetime import date
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from memories.models import LegalHold
from memories.scope import ScopeError, validate_scope

from .models import Channel, Regulation, RejectionReason, State
from .services import MAX_USER_ID_LENGTH, MAX_USER_IDS

REGULATION_HELP = {
    Regulation.GDPR: "GDPR (EU/UK): you have the right to have personal data about you erased "
    "(Art. 17). We answer within one month.",
    Regulation.CCPA: "CCPA (California): you have the right to ask a business to delete personal information "
    "it collected from you (§1798.105). We answer within 45 days.",
}

# The DRP reason codes in plain words, for staff (select) and for the subject (status page).
REJECTION_REASON_TEXT: dict[str, str] = {
    RejectionReason.SUSPECTED_FRAUD: "We could not accept the request because it appears not to come from the "
    "person the data is about.",
    RejectionReason.INSUF_VERIFICATION: "We could not verify your identity with the information provided.",
    RejectionReason.NO_MATCH: "We found no data linked to the identifiers you gave us.",
    RejectionReason.CLAIM_NOT_COVERED: "The request is not covered by the law you named (for example, the data is "
    "not personal data or an exemption applies).",
    RejectionReason.OUTSIDE_JURISDICTION: "The law you named does not apply to you or to this service.",
    RejectionReason.TOO_MANY_REQUESTS: "We have received too many requests from you in a short time.",
    RejectionReason.OTHER: "We could not act on the request. Please contact us for details.",
}

REJECTION_REASON_LABELS = [
    (RejectionReason.SUSPECTED_FRAUD.value, "Suspected fraud"),
    (RejectionReason.INSUF_VERIFICATION.value, "Identity could not be verified"),
    (RejectionReason.NO_MATCH.value, "No matching data"),
    (RejectionReason.CLAIM_NOT_COVERED.value, "Claim not covered by the regulation"),
    (RejectionReason.OUTSIDE_JURISDICTION.value, "Outside jurisdiction"),
    (RejectionReason.TOO_MANY_REQUESTS.value, "Too many requests"),
    (RejectionReason.OTHER.value, "Other (explain in the note)"),
]


def _parse_user_ids(raw: str) -> list[str]:
    ids: list[str] = []
    for line in raw.splitlines():
        value = line.strip()
        if value and value not in ids:
            ids.append(value)
    if not ids:
        raise ValidationError("Enter at least one user id, one per line.")
    if len(ids) > MAX_USER_IDS:
        raise ValidationError(f"Enter at most {MAX_USER_IDS} user ids.")
    if any(len(v) > MAX_USER_ID_LENGTH for v in ids):
        raise ValidationError(f"A user id can be at most {MAX_USER_ID_LENGTH} characters long.")
    return ids


class SubjectRequestForm(forms.Form):
    """The public form. `website` is a honeypot: hidden from people, filled in by naive bots."""

    regulation = forms.ChoiceField(
        label="Which law do you make this request under?",
        choices=Regulation.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the law you make the request under."},
    )
    user_ids = forms.CharField(
        label="Your user id(s) in the product",
        help_text="The id the AI product knows you by (shown in your account settings). "
        "If you have several, enter one per line.",
        error_messages={"required": "Enter at least one user id, one per line."},
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
    )
    email = forms.EmailField(
        label="Your e-mail address",
        help_text="We send the confirmation and a private link to follow your request to this address.",
        error_messages={"required": "Enter your e-mail address so we can send you the status link."},
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    suppress = forms.BooleanField(
        label="After the erasure, refuse to store new memories about me (the assistant will not remember me "
        "again under these ids).",
        required=False,
    )
    consent = forms.BooleanField(
        label="I confirm that I am the person these ids belong to (or authorised to act for them), and I agree "
        "that the data is permanently erased. This cannot be undone.",
        error_messages={"required": "Please confirm to continue."},
    )
    website = forms.CharField(
        label="Leave this field empty",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def clean_user_ids(self) -> list[str]:
        return _parse_user_ids(self.cleaned_data["user_ids"])

    @property
    def is_bot(self) -> bool:
        return bool(self.data.get("website"))


class ScopeFieldsMixin(forms.Form):
    agent_id = forms.CharField(label="Agent id", required=False, max_length=255)
    app_id = forms.CharField(label="App id", required=False, max_length=255)
    run_id = forms.CharField(label="Run id", required=False, max_length=255)
    metadata = forms.CharField(
        label="Metadata (JSON object, matched by containment)",
        required=False,
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": '{"project": "alpha"}', "spellcheck": "false"}),
    )

    def clean_metadata(self) -> dict[str, Any] | None:
        raw = self.cleaned_data["metadata"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ValidationError("Enter a valid JSON object.") from exc
        if not isinstance(value, dict) or not value:
            raise ValidationError("Enter a non-empty JSON object.")
        return value

    def scope_fields(self) -> dict[str, Any]:
        scope: dict[str, Any] = {}
        for key in ("agent_id", "app_id", "run_id", "metadata"):
            value = self.cleaned_data.get(key)
            if value:
                scope[key] = value
        return scope


class StaffRequestForm(ScopeFieldsMixin):
    regulation = forms.ChoiceField(label="Regulation", choices=Regulation.choices)
    user_ids = forms.CharField(
        label="Subject user id(s)",
        help_text="One per line.",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
    )
    email = forms.EmailField(
        label="Subject e-mail", required=False, help_text="Optional; the status link is sent here."
    )
    suppress = forms.BooleanField(
        label="Suppress: refuse new memories for these user ids after the erasure", required=False
    )

    field_order = ["regulation", "user_ids", "email", "agent_id", "app_id", "run_id", "metadata", "suppress"]

    def clean_user_ids(self) -> list[str]:
        return _parse_user_ids(self.cleaned_data["user_ids"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("user_ids") and not self.errors:
            try:
                validate_scope({"user_id": cleaned["user_ids"], **self.scope_fields()})
            except ScopeError as exc:
                raise ValidationError(str(exc)) from exc
        return cleaned


class ConfirmIdentityForm(forms.Form):
    note = forms.CharField(
        label="How was the identity verified?",
        max_length=1000,
        help_text="For example: signed-in account e-mail matched; no personal data in the note.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    user_ids = forms.CharField(
        label="The subject's user ids (one per line)",
        required=False,
        help_text="Attached to the request and confirmed, with the ids it already names; leave empty to confirm "
        "those.",
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_user_ids(self) -> list[str]:
        raw = self.cleaned_data["user_ids"]
        return _parse_user_ids(raw) if raw.strip() else []


class RejectForm(forms.Form):
    reason = forms.ChoiceField(label="Reason", choices=REJECTION_REASON_LABELS)
    note = forms.CharField(
        label="Note", required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )


class CancelForm(forms.Form):
    note = forms.CharField(label="Note", required=False, max_length=1000)


class ExtendForm(forms.Form):
    reason = forms.CharField(
        label="Reason for the extension",
        max_length=1000,
        help_text="Told to the subject; for example the complexity or number of requests.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ApproveForm(forms.Form):
    confirm = forms.BooleanField(
        label="I have checked the scope; erase these memories permanently.",
        error_messages={"required": "Tick the box to confirm the erasure."},
    )


class QueueFilterForm(forms.Form):
    state = forms.ChoiceField(label="State", required=False, choices=[("", "Any state"), *State.choices])
    regulation = forms.ChoiceField(
        label="Regulation", required=False, choices=[("", "Any regulation"), *Regulation.choices]
    )
    channel = forms.ChoiceField(
        label="Channel", required=False, choices=[("", "Any channel"), *Channel.choices]
    )
    overdue = forms.BooleanField(label="Overdue only", required=False)
    # console: search, sort, "assigned to me"
    q = forms.CharField(
        label="Reference",
        required=False,
        max_length=20,
        widget=forms.TextInput(
            attrs={"placeholder": "ER-2026-000042", "type": "search", "spellcheck": "false"}
        ),
    )
    sort = forms.ChoiceField(
        label="Sort",
        required=False,
        choices=[
            ("received", "Newest first"),
            ("due", "Due date, soonest first"),
            ("-due", "Due date, latest first"),
        ],
    )
    mine = forms.BooleanField(label="Assigned to me", required=False)


def staff_members() -> Any:
    """The accounts a request can be assigned to: active privacy-team members."""
    return get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")


class AssigneeField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.get_username())


class AssignForm(forms.Form):
    assignee = AssigneeField(
        label="Change to", queryset=staff_members(), required=False, empty_label="(nobody)"
    )


MAX_BULK = 100
BULK_ACTIONS = [("assign", "Assign to…"), ("extend", "Extend the deadline (one reason for all)")]


class BulkForm(forms.Form):
    """A bulk action over the requests ticked in the queue; each request then goes through its own service."""

    ids = forms.TypedMultipleChoiceField(
        label="Requests", coerce=str, error_messages={"required": "Tick at least one request."}
    )
    bulk_action = forms.ChoiceField(label="Action", choices=BULK_ACTIONS)
    assignee = AssigneeField(
        label="Assign to", queryset=staff_members(), required=False, empty_label="(nobody)"
    )
    reason = forms.CharField(
        label="Reason for the extension",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any id is accepted here; the view looks each one up and reports those it cannot find.
        self.fields["ids"].choices = [(v, v) for v in (self.data.getlist("ids") if self.data else [])]  # type: ignore[attr-defined]

    def clean_ids(self) -> list[str]:
        ids = self.cleaned_data["ids"]
        if len(ids) > MAX_BULK:
            raise ValidationError(f"Tick at most {MAX_BULK} requests at once.")
        return ids

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("bulk_action") == "extend" and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", "An extension needs a reason.")
        return cleaned


class LegalHoldForm(ScopeFieldsMixin):
    user_id = forms.CharField(label="User id", required=False, max_length=255)
    reason = forms.ChoiceField(label="Legal ground (GDPR Art. 17(3))", choices=LegalHold.Reason.choices)
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=1000,
        help_text="Case or matter number; no personal data.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    field_order = ["user_id", "agent_id", "app_id", "run_id", "metadata", "reason", "note"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "metadata" in self.errors:
            return cleaned
        scope = self.scope()
        if not scope:
            raise ValidationError("Give at least one of user id, agent id, app id, run id or metadata.")
        try:
            cleaned["scope"] = validate_scope(scope)
        except ScopeError as exc:
            raise ValidationError(str(exc)) from exc
        return cleaned

    def scope(self) -> dict[str, Any]:
        scope = self.scope_fields()
        if self.cleaned_data.get("user_id"):
            scope["user_id"] = self.cleaned_data["user_id"]
        return scope


class ExportForm(forms.Form):
    """The audit export's query: ?format=csv|json&from=YYYY-MM-DD&to=YYYY-MM-DD (the API's parameter names)."""

    format = forms.ChoiceField(label="Format", choices=[("csv", "CSV"), ("json", "JSON")], initial="csv")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these two are added by name.
        self.fields["from"] = forms.DateField(
            label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
        )
        self.fields["to"] = forms.DateField(
            label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start: date | None = cleaned.get("from")
        end: date | None = cleaned.get("to")
        if start and end and start > end:
            self.add_error("to", "The end date must not be before the start date.")
        return cleaned
