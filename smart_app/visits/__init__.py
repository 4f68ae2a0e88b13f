"""Virtual waiting room and video visit (issue 8): state machine, join links, consent, live events, video.

Mount with :func:`smart_app.visits.blueprint.make_visits_blueprint` under ``/app/visits``.
"""
