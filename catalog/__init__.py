"""The catalog domain: Tekton resources and versions, catalog trees, bundles, the OCI registry client, the index and
the resolver. Imports nothing else of taskhub's, and no Flask."""
