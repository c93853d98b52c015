"""A claim reviewed in the web inbox: checked by a machine, decided by a manager, filed.

Its form has what a browser can check (a required amount between 0 and 1000) and what only the
server knows (a rejection must say why), so the browser tests see both kinds of field error.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from sdk import human_step, machine_step, workflow

MANAGERS = "managers"


class Claim(BaseModel):
    """A claim to review."""

    employee: str
    amount: float = Field(gt=0)


class ClaimReview(BaseModel):
    """The manager's form."""

    approved: bool
    amount: float = Field(ge=0, le=1000, description="The amount approved")
    comment: str | None = Field(default=None, validate_default=True)

    @field_validator("comment")
    @classmethod
    def _say_why(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("approved") is False and not (value or "").strip():
            raise ValueError("say why when you reject a claim")
        return value


@machine_step(name="tests.check_claim")
async def check_claim(claim: Claim) -> Claim:
    """A machine step before the person."""
    return claim


@human_step(form=ClaimReview, name="tests.review_claim", assignee_group=MANAGERS)
def review_claim(claim: Claim) -> str:
    return f"Review {claim.amount:.2f} for {claim.employee}"


@machine_step(name="tests.file_claim")
async def file_claim(review: ClaimReview) -> str:
    """A machine step after the person."""
    return "filed" if review.approved else "declined"


@workflow(name="tests.web_claim", version="1.0.0", description="A claim reviewed in the web inbox.")
async def web_claim(claim: Claim) -> str:
    claim = await check_claim(claim)
    review = await review_claim(claim)
    return await file_claim(review)
