"""Reading customers (read key)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import select

from cartera_common.access import Principal, require
from segmenter.tables import customer

router = APIRouter(tags=["customers"])


class Profile(BaseModel):
    name: str | None
    email: str | None
    phone: str | None
    locale: str | None
    time_zone: str | None
    industry: str | None
    company_size: str | None
    region: str | None
    country: str | None
    traits: dict[str, Any]


class Customer(BaseModel):
    customer_id: str
    workspace_id: str
    profile: Profile
    order_count: int
    revenue: Decimal
    first_order_at: datetime | None
    last_order_at: datetime | None
    first_seen_at: datetime
    last_event_at: datetime


@router.get("/customers/{customer_id}", response_model=Customer, summary="One customer with its orders summary")
async def get_customer(customer_id: str, request: Request, principal: Principal = Depends(require("read"))) -> Customer:
    query = select(customer).where(
        customer.c.workspace_id == principal.workspace_id, customer.c.customer_id == customer_id
    )
    async with request.app.state.runtime.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise HTTPException(404, f"no customer {customer_id!r} in this workspace")
    profile = Profile(**{k: row[k] for k in Profile.model_fields})
    return Customer(profile=profile, **{k: row[k] for k in Customer.model_fields if k != "profile"})
