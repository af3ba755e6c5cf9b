"""A stock grpc.reflection.v1alpha client (Python's grpcio-reflection) against a coordinator.

Usage: reflection_v1alpha.py HOST:PORT. Prints `service NAME` for every listed service and
`method SERVICE.METHOD` for each method of the fleetcal services, resolved through the
server's file descriptors; exits non-zero on any failure.
"""

import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> None:
    with grpc.insecure_channel(sys.argv[1]) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        db = ProtoReflectionDescriptorDatabase(channel)
        pool = DescriptorPool(db)
        for name in db.get_services():
            print(f"service {name}")
            if name.startswith("fleetcal."):
                for method in pool.FindServiceByName(name).methods:
                    print(f"method {name}.{method.name}")


if __name__ == "__main__":
    main()
