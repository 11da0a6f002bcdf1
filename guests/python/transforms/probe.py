"""The isolation probe in Python: tries to read another tenant's data and write a third tenant's
report under its own agent, and reads its own data. The host's gate is the judge: the pipeline
checks the gate's decisions, whatever this probe reports.

Parameters: ``read-tenant``, ``write-tenant`` (required); ``resource`` (default ``analytics``);
``read-dataset`` (default ``data``)."""

import sluice
from sluice import Dataset, Denied, Figures, HostError, Report


def verdict(attempt) -> str:
    try:
        attempt()
        return "ALLOWED"
    except Denied:
        return "BLOCKED"
    except HostError as e:
        # Allowed by the gate, then something else: still access, still a violation.
        return f"ALLOWED ({e})"


def required(params: sluice.Params, name: str) -> str:
    value = sluice.param(params, name)
    if value is None:
        raise sluice.TransformFailed(f"parameter '{name}' is required")
    return value


def run(params: sluice.Params) -> Figures:
    me = sluice.whoami()
    resource = sluice.param(params, "resource") or "analytics"
    read_tenant = required(params, "read-tenant")
    write_tenant = required(params, "write-tenant")
    read_dataset = sluice.param(params, "read-dataset") or "data"

    def own_read() -> None:
        for name in Dataset.list(me.tenant, resource):
            Dataset.open(me.tenant, resource, name).next_batch()

    return (
        Figures()
        .add(
            f"read:{resource}:{read_tenant}",
            verdict(lambda: Dataset.open(read_tenant, resource, read_dataset)),
        )
        .add(f"write:reports:{write_tenant}", verdict(lambda: Report.create(write_tenant)))
        .add(f"read:{resource}:{me.tenant}", verdict(own_read))
    )


WitWorld = sluice.export(run)
