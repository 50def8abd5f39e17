//! The shape of every certificate the cluster CA signs for a server or a client (the servers'
//! own, and the client certificates of nodes that join), so that all are alike.

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType};
use time::{Duration, OffsetDateTime};

/// How long a certificate the CA signs lasts (servers renew theirs at start, a month ahead).
pub const LEAF_YEARS: i64 = 1;

/// Valid from a few minutes ago (clocks differ a little between machines) for `years`.
pub fn validity(params: &mut CertificateParams, years: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(365 * years);
}

/// A certificate for `common_name` (the user, for a client), in `organization` (its group),
/// naming `sans` (host names or addresses), for `usage`.
pub fn leaf_params(
    common_name: &str,
    organization: Option<&str>,
    sans: &[String],
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        params.distinguished_name.push(DnType::OrganizationName, o);
    }
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(s.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![usage];
    validity(&mut params, LEAF_YEARS);
    Ok(params)
}
