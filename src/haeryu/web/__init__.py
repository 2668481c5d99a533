"""The dashboard and REST API: FastAPI + NiceGUI, behind a token login.

:func:`haeryu.web.app.create_app` builds the app; ``haeryu up`` runs it as a process.
"""
