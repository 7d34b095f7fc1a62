"""Ready-made policies for particular APIs.

- `meraki`: the Cisco Meraki Dashboard API, with `MerakiOrganizations` and
  `meraki_org_key` to charge network and device calls to their
  organization;
- `meraki_sdk`: the same under the official Meraki Python SDK.

Example:
    >>> import httpx, throttlekit as tk
    >>> from throttlekit import presets
    >>> client = httpx.Client(
    ...     transport=tk.ThrottledTransport(*presets.meraki(share=0.8))
    ... )
"""

from . import meraki_sdk
from ._meraki import meraki
from ._meraki_map import ORGANIZATION, MerakiOrganizations, meraki_org_key

__all__ = [
    "ORGANIZATION",
    "MerakiOrganizations",
    "meraki",
    "meraki_org_key",
    "meraki_sdk",
]
