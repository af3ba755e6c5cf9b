//! Compiles `proto/fleetcal/v1/*.proto` with protox (pure Rust, no system `protoc`) and
//! generates the prost messages and tonic services, plus the encoded file descriptor set that
//! tonic-reflection serves.

use std::path::PathBuf;

use prost::Message;

const PROTOS: [&str; 2] = [
    "proto/fleetcal/v1/agent.proto",
    "proto/fleetcal/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("fleetcal_v1_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // An uploaded result (a quick one is ~270 KB of JSON) is kept as the `Bytes` it
        // arrived in, not copied into a `Vec` of its own.
        .bytes(".fleetcal.v1.UploadRequest.result_json")
        .bytes(".fleetcal.v1.UploadRequest.result_packed")
        .compile_fds(fds)?;
    Ok(())
}
