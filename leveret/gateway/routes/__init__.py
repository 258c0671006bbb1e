"""The gateway's routes, one module per family of the API; `leveret.gateway.app` wires them.

A regular package, not a namespace one: import-linter (and anything else that walks the
package) sees these modules only through this file.
"""

__all__: list[str] = []
