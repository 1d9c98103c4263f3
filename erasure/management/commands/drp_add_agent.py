"""python manage.py drp_add_agent --agent-id ID --name NAME --verify-key B64 [--trusted]"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from erasure.drp.services import DrpInputError, drp_agent_register


class Command(BaseCommand):
    help = (
        "Registers (or updates) a Data Rights Protocol authorized agent with its base64 Ed25519 verify key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--agent-id", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--verify-key", required=True, help="base64 Ed25519 verify key")
        parser.add_argument(
            "--trusted", action="store_true", help="its email_verified: true counts as identity evidence"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            agent = drp_agent_register(
                agent_id=options["agent_id"],
                name=options["name"],
                verify_key=options["verify_key"],
                trusted=options["trusted"],
                actor="manage.py",
            )
        except DrpInputError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from None
        self.stdout.write(f"agent {agent.agent_id} registered{' (trusted)' if agent.trusted else ''}")
