"""The security tests reuse the agency tests' sandbox fixtures (a real sandbox over mTLS)."""

from tests.agency_adapters.conftest import adapter_credentials, start_sandbox

__all__ = ["adapter_credentials", "start_sandbox"]
