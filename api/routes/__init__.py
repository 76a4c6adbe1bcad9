"""All routers, gathered into the one the app includes."""

from fastapi import APIRouter

from api.routes import (
    admin,
    docs,
    events,
    health,
    links,
    me,
    metrics,
    papers,
    preferences,
    preferences_link,
    signup,
    users,
    webhooks,
)

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(papers.router)
api_router.include_router(users.router)
api_router.include_router(events.router)
api_router.include_router(links.router)
api_router.include_router(webhooks.router)
api_router.include_router(signup.router)
api_router.include_router(preferences.router)
api_router.include_router(preferences_link.router)
api_router.include_router(me.router)
api_router.include_router(docs.router)
api_router.include_router(metrics.router)
api_router.include_router(admin.router)
