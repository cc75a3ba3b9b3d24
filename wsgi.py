from app.cli import create_cli_app

app = create_cli_app()
