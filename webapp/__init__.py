"""Flask web application (app factory, UI, JSON API, SPARQL endpoint): see the web-application issue."""
