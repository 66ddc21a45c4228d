"""IAM: AWS managed policies exist, as in every real account.

moto leaves them out unless asked, so attaching e.g.
arn:aws:iam::aws:policy/ReadOnlyAccess answers NoSuchEntity. The provider
detaches policies attached to its roles behind its back, and tests attach
managed ones to play that part. Loading them costs a fraction of a second
per account.
"""

from __future__ import annotations

import os


def patch() -> None:
    # Read by moto when an account's IAM backend is first built.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
