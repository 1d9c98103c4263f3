"""The built-in store's row: always present, name `builtin`, the default store of every erasure."""

from django.db import migrations


def create_builtin(apps, schema_editor):
    Store = apps.get_model("memories", "Store")
    if not Store.objects.filter(kind="builtin").exists():
        Store.objects.create(name="builtin", kind="builtin", config={}, enabled=True)


class Migration(migrations.Migration):
    dependencies = [("memories", "0020_stores")]

    operations = [migrations.RunPython(create_builtin, migrations.RunPython.noop)]
