//! Output tables: another tenant's, batches that lie about their shape, and a flood.

use sluice_guest::{Column, ColumnType, Figures, Params, RunError, Summary, Table, values};

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

/// Creates output tables until the host stops it: 20,000 if it let it.
pub fn table_many(_: &Params) -> Result<Summary, RunError> {
    let me = me();
    for i in 0..20_000 {
        let table = Table::create(&me, "reports", &format!("t{i}"), &[int64_column("x")])?;
        table.append(1, vec![values::int64(vec![i])])?;
        table.commit()?;
    }
    Err(RunError::Failed("committed 20,000 output tables".into()))
}

/// Appends empty batches of 256 columns, 20,000 times: no bytes, but a buffer per column each.
pub fn table_empty_appends(_: &Params) -> Result<Summary, RunError> {
    let columns: Vec<Column> = (0..256).map(|i| int64_column(&format!("c{i}"))).collect();
    let table = Table::create(&me(), "reports", "t", &columns)?;
    for _ in 0..20_000 {
        table.append(0, (0..256).map(|_| values::int64(Vec::new())).collect())?;
    }
    Err(RunError::Failed("appended 20,000 empty batches".into()))
}

/// Commits a good output table, then a second (`second` names it; with `nul=1` its text holds
/// a NUL byte, which PostgreSQL refuses), then writes its report: the host must publish all of
/// them or none.
pub fn two_tables(params: &Params) -> Result<Summary, RunError> {
    let me = me();
    let text = Column {
        name: "s".into(),
        ty: ColumnType::Text,
        nullable: false,
    };
    let first = Table::create(&me, "reports", "first", &[int64_column("x")])?;
    first.append(2, vec![values::int64(vec![1, 2])])?;
    first.commit()?;
    let name = sluice_guest::param(params, "second").unwrap_or("second");
    let second = Table::create(&me, "reports", name, &[text])?;
    let value = if sluice_guest::param(params, "nul") == Some("1") {
        "a\0b"
    } else {
        "ab"
    };
    second.append(1, vec![values::text(&[value])])?;
    second.commit()?;
    let figures = Figures::new().add("tables", "2");
    sluice_guest::Report::create(&me)?.write_json(&figures.to_json(&me))?;
    Ok(figures.into_summary())
}
