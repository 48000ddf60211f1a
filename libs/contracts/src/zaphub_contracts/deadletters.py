"""What lands on the `ZAPHUB_DLQ` stream: the original message and why it could not be processed."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from zaphub_contracts.failures import FailureReason


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: FailureReason
    detail: str = Field(default="", description="Human-readable explanation, e.g. the validation error")
    original_subject: str
    original_stream_seq: int | None = None
    payload: str = Field(description="The original payload, decoded as UTF-8 with replacement")
    headers: dict[str, str] = Field(default_factory=dict)
    attempts: int = 0
    failed_at: datetime
    component: str = Field(description="Which consumer gave up on it, e.g. dispatcher")
