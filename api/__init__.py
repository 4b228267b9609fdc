"""HTTP blueprints, one per concern. `register(app)` attaches them all."""


def register(app):
    from api import batches, files, health, jobs, masks, stats

    for module in (batches, files, health, jobs, masks, stats):
        app.register_blueprint(module.bp)
