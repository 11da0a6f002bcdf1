//! Registry credentials, from where Docker and Podman keep them (`$DOCKER_CONFIG/config.json`,
//! its credential helpers, then `$REGISTRY_AUTH_FILE` or Podman's auth.json): never from
//! Sluice's configuration, never printed.

use docker_credential::DockerCredential;
use oci_client::secrets::RegistryAuth;

/// How to authenticate to `registry`: what the user's Docker or Podman login holds, else
/// anonymously. A helper's failure is not shown: its output may hold the secret.
pub(crate) fn auth_for(registry: &str) -> RegistryAuth {
    let found = docker_credential::get_credential(registry)
        .or_else(|_| docker_credential::get_podman_credential(registry));
    match found {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            RegistryAuth::Basic(user, password)
        }
        Ok(DockerCredential::IdentityToken(token)) => RegistryAuth::Bearer(token),
        Err(_) => RegistryAuth::Anonymous,
    }
}
