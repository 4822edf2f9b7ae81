//! Whether a certificate names a node: `node_name` as a DNS name the
//! certificate is valid for (its SANs, wildcards as RFC 6125 has them).

use rustls::pki_types::{CertificateDer, ServerName};

/// `cert` is valid for the DNS name `node_name`.
pub fn names_node(cert: &CertificateDer<'_>, node_name: &str) -> bool {
    let Ok(name) = ServerName::try_from(node_name) else {
        return false;
    };
    let Ok(leaf) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    leaf.verify_is_valid_for_subject_name(&name).is_ok()
}

/// `node_name` can be checked against a certificate (a DNS name).
pub fn is_dns_name(node_name: &str) -> bool {
    matches!(ServerName::try_from(node_name), Ok(ServerName::DnsName(_)))
}
