"""The public, read-only paper catalogue."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import func, select

from api.deps import PageDep, PathId, SessionDep
from api.openapi import json_error
from api.schemas import PaperPublic, PapersPublic
from recsys.db.models import PaperRow

router = APIRouter(prefix="/papers", tags=["papers"])


@router.get("")
def list_papers(session: SessionDep, page: PageDep) -> PapersPublic:
    """List the catalogue, most recently added papers first."""
    rows = session.scalars(
        select(PaperRow)
        .order_by(PaperRow.created_at.desc(), PaperRow.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    count = session.scalar(select(func.count()).select_from(PaperRow)) or 0
    return PapersPublic(items=[PaperPublic.model_validate(row) for row in rows], count=count)


@router.get("/{paper_id}", responses={404: json_error("No such paper.")})
def get_paper(paper_id: PathId, session: SessionDep) -> PaperPublic:
    """Get one paper by id."""
    paper = session.get(PaperRow, paper_id)
    if paper is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no paper {paper_id}")
    return PaperPublic.model_validate(paper)
