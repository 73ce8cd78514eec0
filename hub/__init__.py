"""The taskhub service's surfaces, the only package that imports Flask: app.create_app (the composition root),
api/ (one blueprint per API family), web/ (pages), cli/ (the `taskhub` command), wsgi/ (server and WSGI layers),
errors (domain errors to HTTP), API tokens and the registry clients built from the settings."""
