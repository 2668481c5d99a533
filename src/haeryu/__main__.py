from haeryu.cli import app

app()
