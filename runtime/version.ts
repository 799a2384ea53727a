/** kiln's version, reported by `/healthz` and `kiln --version`; a test keeps it equal to package.json's. */
export const KILN_VERSION = "0.1.0";
