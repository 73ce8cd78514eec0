"""The catalog domain: Tekton resources, versions, catalog trees and the index. Imports no Flask."""
