"""Operations moto lacks or gets wrong, keyed by (signing name, operation),
and the few corrections that must be made inside moto's models instead.

Each module says which gaps it closes and why the provider depends on them.
"""

from . import codebuild, codepipeline, iam, kms, logs, s3, sns

HANDLERS = {
    **codebuild.HANDLERS,
    **kms.HANDLERS,
    **logs.HANDLERS,
    **s3.HANDLERS,
    **sns.HANDLERS,
}

_PATCHES = (codepipeline.patch, iam.patch, kms.patch, s3.patch, sns.patch)
_applied = False


def apply_patches() -> None:
    """Patch moto's classes, once per process however many apps are built."""
    global _applied
    if not _applied:
        for patch in _PATCHES:
            patch()
        _applied = True
