//! `sluice broker dev`: the embedded AgentWrit-compatible broker, on loopback, until Ctrl-C.

use std::net::SocketAddr;

use sluice_dev_broker::{BrokerConfig, load_or_create_admin_secret, start_with_app};

use crate::args::BrokerDevArgs;
use crate::exit;

pub fn dev(args: BrokerDevArgs) -> anyhow::Result<u8> {
    let addr: SocketAddr = args.addr.parse().map_err(|_| {
        anyhow::anyhow!(
            "--addr '{}' is not an address like 127.0.0.1:8080",
            args.addr
        )
    })?;
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "--addr {addr}: the dev broker only listens on loopback (127.0.0.1 or ::1)"
    );
    if args.app.is_none() && !args.ceiling.is_empty() {
        anyhow::bail!("--ceiling needs --app NAME: the ceiling is the app's");
    }
    let admin_secret = load_or_create_admin_secret(&args.state)?;
    let mut config = BrokerConfig::in_memory(admin_secret);
    config.state_dir = Some(args.state.clone());
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let (broker, app) = match &args.app {
            Some(name) => {
                let ceiling = if args.ceiling.is_empty() {
                    vec![
                        "read:analytics:*".to_string(),
                        "write:reports:*".to_string(),
                    ]
                } else {
                    args.ceiling.clone()
                };
                let (broker, app) = start_with_app(config, addr, name, &ceiling).await?;
                (broker, Some((app, ceiling)))
            }
            None => (
                sluice_dev_broker::DevBroker::start(config, addr).await?,
                None,
            ),
        };
        println!("AgentWrit dev broker listening on {}", broker.url());
        println!(
            "state: {} (admin secret in admin.secret, mode 0600)",
            args.state.display()
        );
        println!();
        println!("export AGENTWRIT_BROKER_URL={}", broker.url());
        if let Some((app, ceiling)) = &app {
            println!("export AGENTWRIT_CLIENT_ID={}", app.client_id);
            // Printing the app's secret is this command's job, as `vault server -dev` prints
            // its root token: it is a local development credential.
            println!(
                "export AGENTWRIT_CLIENT_SECRET={}",
                app.client_secret.secret()
            );
            println!();
            println!("app ceiling: {}", ceiling.join(" "));
        }
        println!("Ctrl-C stops the broker.");
        tokio::signal::ctrl_c().await?;
        broker.shutdown().await;
        Ok::<u8, anyhow::Error>(exit::OK)
    })
}
