"""The service: a FastAPI app and its one-page web app around one bundle; it uses every stage below."""
