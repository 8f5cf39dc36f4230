"""What templates see of a lead and its company (the engine's render and ``preview``)."""

from __future__ import annotations

from typing import Any

from nurtured.models import Lead


def lead_view(lead: Lead) -> dict[str, Any]:
    return {
        "email": lead.email,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "full_name": " ".join(p for p in (lead.first_name, lead.last_name) if p),
        "title": lead.title,
        "source": lead.source,
        "interests": list(lead.interests or ()),
        "timezone": lead.timezone,
        "fields": dict(lead.extra or {}),
    }


def company_view(lead: Lead) -> dict[str, Any]:
    company = lead.company
    if company is None:
        return {"name": None, "domain": None, "size": None, "industry": None}
    return {
        "name": company.name,
        "domain": company.domain,
        "size": company.size,
        "industry": company.industry,
    }
