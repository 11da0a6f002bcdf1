//! Output tables: another tenant's, batches that lie about their shape, and a flood.

use sluice_guest::{Column, ColumnType, Params, RunError, Summary, Table, values};

use super::me;

fn int64_column(name: &str) -> Column {
    Column {
        name: name.into(),
        ty: ColumnType::Int64,
        nullable: false,
    }
}

/// Creates the retailer's output table.
pub fn write_other_tenant_table(params: &Params) -> Result<Summary, RunError> {
    let target = sluice_guest::param(params, "write-tenant").unwrap_or("retail");
    let table = Table::create(target, "reports", "daily", &[int64_column("x")])?;
    table.append(1, vec![values::int64(vec![1])])?;
    table.commit()?;
    Err(RunError::Failed("wrote another tenant's table".into()))
}

/// Says 5 rows and hands over 3 values.
pub fn table_lies_about_rows(_: &Params) -> Result<Summary, RunError> {
    let table = Table::create(&me(), "reports", "t", &[int64_column("x")])?;
    table.append(5, vec![values::int64(vec![1, 2, 3])])?;
    Err(RunError::Failed("appended 3 values as 5 rows".into()))
}

/// Text offsets pointing far past the bytes they index.
pub fn table_bad_offsets(_: &Params) -> Result<Summary, RunError> {
    let schema = [Column {
        name: "s".into(),
        ty: ColumnType::Text,
        nullable: false,
    }];
    let table = Table::create(&me(), "reports", "t", &schema)?;
    let mut column = values::text(&["ab", "cd"]);
    if let sluice_guest::ColumnValues::Text((_, offsets)) = &mut column.values {
        offsets[2] = u32::MAX;
    }
    table.append(2, vec![column])?;
    Err(RunError::Failed("appended offsets past the data".into()))
}

/// Appends 512 KiB batches until the report budget stops it: the host keeps no more of a table
/// than the budget allows.
pub fn table_flood(_: &Params) -> Result<Summary, RunError> {
    let table = Table::create(&me(), "reports", "t", &[int64_column("x")])?;
    loop {
        table.append(65_536, vec![values::int64(vec![7; 65_536])])?;
    }
}
