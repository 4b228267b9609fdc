"""HTTP blueprints, one per concern. `register(app)` attaches them all."""


def register(app):
    from api import batches, docs, files, health, jobs, masks, review, stats, users

    for module in (batches, docs, files, health, jobs, masks, review, stats, users):
        app.register_blueprint(module.bp)
    app.register_blueprint(docs.ui)
