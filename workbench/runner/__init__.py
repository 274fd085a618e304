"""Promotion and the headless runner: the artifact a validated strategy becomes, the runner's
own database (its intent log), its metrics, health endpoint, alerts and JSON logs."""
