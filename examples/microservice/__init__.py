"""The autonomous Celery microservice (seed 003) rebuilt on conveyor.

Its tasks live in :mod:`examples.microservice.tasks` (registered as
``microservice.<seed task name>`` on the queues ``email``, ``notifications``,
``data_processing`` and ``cleanup``); :mod:`examples.microservice.celery_client`
is the backend's side; :mod:`examples.microservice.app` is what
``conveyor up --example microservice`` runs.
"""
