"""The Data Docs site (``local_site`` in gx/great_expectations.yml), updated after each
validation in time that does not grow with the history.

Every checkpoint's ``UpdateDataDocsAction`` asks GX's site builder for two pages, the new
validation result's and its suite's. GX's builder then

- lists the whole validation result store twice to find that one result (its validations and
  profiling sections each list it, then skip every key they were not asked for),
- lists it a third time for the index, with the site's pages, and reads every result that has
  a page (a file each) to write one row per validation ever run into ``index.html``.

So each validation's Data Docs grew with every month and every run loaded. Measured on the
demo's month after 2,400 earlier validations (a result and a page each): each of the four
suites took 2.4-2.9 s instead of 0.1-0.4 s, the month's run 14.7 s instead of 6.3 s. Here, as
configured in ``gx/great_expectations.yml`` (the same month: 0.3-0.7 s a suite, 6.7 s):

- :class:`RequestedPagesSectionBuilder`: a section asked for some pages builds those, without
  listing its store (asked for none, as by ``context.build_data_docs()``, it builds every page
  as GX's does);
- no profiling section (nothing here is profiled);
- :class:`SiteFolderStoreBackend`: listing the suites' pages walks their folder only;
- :class:`RecentValidationsIndexBuilder`: the index shows the newest ``validation_results_limit``
  validations (GX's own setting), and reads only those results.

Every validation keeps its page, linked from its asset check's ``data_docs`` metadata in Dagster.
What is left that grows is one walk of the site's folder to find the newest pages (0.07 s for
2,400 pages).
"""

from __future__ import annotations

from great_expectations.data_context.store.tuple_store_backend import TupleFilesystemStoreBackend
from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder, DefaultSiteSectionBuilder


class SiteFolderStoreBackend(TupleFilesystemStoreBackend):
    """The site's files (GX's filesystem backend), each kind listed from its own folder: GX's
    walks the whole site for each kind (listing the 6 suites' pages walked every validation's
    page, 0.06 s at 2,400 pages)."""

    def list_keys(self, prefix: tuple = ()) -> list:
        if not prefix and self.filepath_prefix:
            prefix = tuple(self.filepath_prefix.strip("/").split("/"))
        return super().list_keys(prefix)


class _Listing:
    """A store that lists only the given keys (everything else is the store's own)."""

    def __init__(self, store, keys: list) -> None:
        self._store, self._keys = store, keys

    def list_keys(self) -> list:
        return list(self._keys)

    def __getattr__(self, name: str):
        return getattr(self._store, name)


class RequestedPagesSectionBuilder(DefaultSiteSectionBuilder):
    """A Data Docs section (the suites', the validations') that builds the pages it is asked
    for without listing its whole store to find them."""

    def build(self, resource_identifiers=None) -> None:
        if not resource_identifiers:
            return super().build(resource_identifiers)
        store = self.source_store
        asked = [key for key in resource_identifiers
                 if isinstance(key, store.key_class) and store.has_key(key)]
        self.source_store = _Listing(store, asked)
        try:
            return super().build(resource_identifiers)
        finally:
            self.source_store = store


class RecentValidationsIndexBuilder(DefaultSiteIndexBuilder):
    """The site's index with the newest ``validation_results_limit`` validations (every
    validation when no limit is set, as GX's): only those results are read."""

    def _build_validation_and_profiling_result_site_keys(self, skip_and_clean_missing: bool) -> list:
        if not self.validation_results_limit:
            return super()._build_validation_and_profiling_result_site_keys(skip_and_clean_missing)
        pages = self.target_store.store_backends[ValidationResultIdentifier].list_keys()
        # A page's key ends with its run's name, its run's time and the batch; the time as GX
        # writes it (20261202T045424.454610Z) sorts as the time does, so only the newest pages
        # are made keys of.
        newest = sorted(pages, key=lambda key: key[-2], reverse=True)[:self.validation_results_limit]
        results = self.data_context.stores[self.source_stores["validations"]]
        # A page whose result was deleted is left out (GX's builder would also delete the page).
        return [key for key in map(ValidationResultIdentifier.from_tuple, newest) if results.has_key(key)]
