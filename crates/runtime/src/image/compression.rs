//! Archives and layers come as plain tar or gzip'd tar, whatever their media type or file
//! name claims; the first bytes tell which.

use anyhow::bail;
use flate2::read::GzDecoder;
use std::io::{BufRead, BufReader, Read};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The uncompressed stream of `reader`, gzip'd or not.
pub(crate) fn decompressed<R: Read + 'static>(reader: R) -> anyhow::Result<Box<dyn Read>> {
    let mut reader = BufReader::new(reader);
    let head = reader.fill_buf()?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(GzDecoder::new(reader)))
    } else if head.starts_with(&ZSTD_MAGIC) {
        bail!("zstd-compressed content is not supported yet: recompress it with gzip or leave it plain tar")
    } else {
        Ok(Box::new(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn read_all(bytes: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        decompressed(std::io::Cursor::new(bytes))?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn sniffs_gzip_and_passes_plain_content_through() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(b"inside").unwrap();
        assert_eq!(read_all(gz.finish().unwrap()).unwrap(), b"inside");
        assert_eq!(read_all(b"plain".to_vec()).unwrap(), b"plain");
        assert_eq!(read_all(Vec::new()).unwrap(), b"");
        assert!(read_all(vec![0x28, 0xb5, 0x2f, 0xfd, 0]).is_err());
    }
}
