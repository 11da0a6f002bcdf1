//! `sluice new`: scaffolds a transform project and says what to type next.

use sluice_scaffold::Lang as ScaffoldLang;

use crate::args::{Lang, NewArgs};
use crate::exit;
use crate::print::safe;

pub fn run(args: NewArgs) -> anyhow::Result<u8> {
    let lang = match args.lang {
        Lang::Rust => ScaffoldLang::Rust,
        Lang::Python => ScaffoldLang::Python,
        Lang::Js => ScaffoldLang::Js,
    };
    let project = sluice_scaffold::create(lang, &args.name, &args.dir)?;
    let dir = safe(&project.dir.display().to_string()).into_owned();
    println!("Created {dir} ({} files). Next:", project.files.len());
    println!();
    println!("    {dir}/build.sh");
    println!("    sluice data seed --dir data");
    println!(
        "    sluice try {dir}/{} --lang {} --tenant retail \\",
        project.component,
        lang.flag()
    );
    println!("        --scope read:analytics:retail --scope write:reports:retail \\");
    println!("        --data data --reports reports");
    Ok(exit::OK)
}
