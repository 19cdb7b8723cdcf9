// Real servers and real libvirt on a shared 2-core machine: generous per-test bounds.
jest.setTimeout(120_000);
