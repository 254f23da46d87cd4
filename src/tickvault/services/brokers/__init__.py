"""REST clients of the brokers (KIS, Kiwoom): tokens, approval keys, quotations.

``brokers.kis.KisClient(settings)`` gives ``access_token()`` and ``approval_key()`` (for the
KIS WebSocket); ``brokers.kiwoom.KiwoomClient(settings)`` gives ``token()``. Tokens are
cached on disk with owner-only permissions and reused until they expire.
"""

from .errors import BrokerAuthError, BrokerError, BrokerRateLimited

__all__ = ["BrokerAuthError", "BrokerError", "BrokerRateLimited"]
