//! Reprieve's v1 gRPC API: the code generated from `proto/reprieve/v1/reprieve.proto` and the conversions
//! between its messages and the core's domain types.
//!
//! Conversions from the wire validate as they go: an unknown enum value or a negative size is a
//! [`FieldError`] naming the field, which the server turns into `INVALID_ARGUMENT`.

pub mod convert;

/// Generated messages, clients and servers of package `reprieve.v1`.
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, missing_docs, missing_debug_implementations)]
pub mod v1 {
    tonic::include_proto!("reprieve.v1");
}

/// The encoded file descriptor set of the API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/reprieve_descriptor.bin"));

pub use convert::FieldError;

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn embedded_descriptor_decodes() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).expect("descriptor decodes");
        let file = fds
            .file
            .iter()
            .find(|f| f.package() == "reprieve.v1")
            .expect("reprieve.v1 is in the set");
        let services: Vec<&str> = file.service.iter().map(|s| s.name()).collect();
        assert_eq!(services, ["ReuseScorer", "Feedback", "Models"]);
    }
}
