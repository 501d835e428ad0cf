"""The composition root: the server's parts built once, wired together, and handed to every front end."""
