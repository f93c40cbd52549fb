"""trustsvc: identity tokens, electronic seals and e-licence signatures with SM2/SM3."""

from trustsvc.errors import TrustsvcError

__all__ = ["TrustsvcError", "__version__"]
__version__ = "0.1.0"
