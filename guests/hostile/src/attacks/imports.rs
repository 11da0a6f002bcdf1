//! Components importing what Sluice never provides: the host refuses to load them at all.

use sluice_guest::{RunError, Summary};

/// Reads `/etc/passwd` (imports `wasi:filesystem`).
#[cfg(all(feature = "filesystem", not(feature = "wasi_surface")))]
pub fn attack() -> Result<Summary, RunError> {
    let secrets =
        std::fs::read_to_string("/etc/passwd").map_err(|e| RunError::Failed(e.to_string()))?;
    Err(RunError::Failed(format!(
        "read {} bytes of /etc/passwd",
        secrets.len()
    )))
}

/// Connects to the broker's port (imports `wasi:sockets`).
#[cfg(all(
    feature = "sockets",
    not(feature = "filesystem"),
    not(feature = "wasi_surface")
))]
pub fn attack() -> Result<Summary, RunError> {
    let stream = std::net::TcpStream::connect("127.0.0.1:8080")
        .map_err(|e| RunError::Failed(e.to_string()))?;
    Err(RunError::Failed(format!("connected: {stream:?}")))
}

/// Asks every WASI interface an interpreter links for what it would grant, as figures: the
/// tests expect "nothing" from each (imports `wasi:filesystem` and `wasi:sockets` directly).
#[cfg(feature = "wasi_surface")]
pub fn attack() -> Result<Summary, RunError> {
    use sluice_guest::Figures;
    use wasip2::cli::{environment, stdin};
    use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    use wasip2::sockets::{instance_network, ip_name_lookup, tcp_create_socket, udp_create_socket};

    let network = instance_network::instance_network();
    let preopens = wasip2::filesystem::preopens::get_directories();
    let stdin = match stdin::get_stdin().blocking_read(1) {
        Ok(bytes) => format!("read {} bytes", bytes.len()),
        Err(wasip2::io::streams::StreamError::Closed) => "closed".to_string(),
        Err(e) => format!("{e:?}"),
    };
    let tcp = match tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
        Ok(socket) => {
            // Granted a socket: try to reach the broker's conventional port with it.
            let broker = IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: 8080,
                address: (127, 0, 0, 1),
            });
            match socket.start_connect(&network, broker) {
                Ok(()) => "connect started".to_string(),
                Err(e) => format!("socket created, connect {}", e.name()),
            }
        }
        Err(e) => e.name().to_string(),
    };
    let udp = match udp_create_socket::create_udp_socket(IpAddressFamily::Ipv4) {
        Ok(_) => "socket created".to_string(),
        Err(e) => e.name().to_string(),
    };
    let lookup = match ip_name_lookup::resolve_addresses(&network, "localhost") {
        Ok(_) => "lookup started".to_string(),
        Err(e) => e.name().to_string(),
    };
    let figures = Figures::new()
        .add("preopens", preopens.len().to_string())
        .add(
            "environment",
            environment::get_environment().len().to_string(),
        )
        .add("arguments", environment::get_arguments().len().to_string())
        .add(
            "cwd",
            environment::initial_cwd().unwrap_or_else(|| "none".into()),
        )
        .add("stdin", stdin)
        .add("tcp", tcp)
        .add("udp", udp)
        .add("name-lookup", lookup);
    Ok(figures.into_summary())
}
