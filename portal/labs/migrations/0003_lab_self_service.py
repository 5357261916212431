from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('labs', '0002_access_instructions_user_extend'),
    ]

    operations = [
        migrations.AddField(
            model_name='lab',
            name='self_service',
            field=models.BooleanField(default=False, help_text="Signed-in users may start a session themselves on My labs (for the lab's default duration); otherwise only admins assign it."),
        ),
    ]
