//! Host bindings generated from `wit/` (world `sluice:etl/transform`).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "transform",
    imports: { default: trappable },
    additional_derives: [PartialEq],
    trappable_error_type: {
        "sluice:etl/types.error" => crate::error::HostError,
    },
    with: {
        "sluice:etl/datasets.dataset": crate::host::datasets::OpenDataset,
        "sluice:etl/reports.report": crate::host::reports::ReportDraft,
        "sluice:etl/tables.table": crate::host::tables::TableDraft,
    },
});
