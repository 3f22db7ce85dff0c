"""Legacy import name of the SDK: ``d3a_api_client`` and its submodules ARE ``gsy_e_sdk``'s.

``import d3a_api_client.setups.x`` returns the very module object ``gsy_e_sdk.setups.x``, so
old scripts and the old ``--setup`` lookup keep working without loading anything twice.
"""

import importlib
import importlib.abc
import importlib.util
import logging
import sys

import gsy_e_sdk

_LEGACY = "d3a_api_client"
_CURRENT = "gsy_e_sdk"


class _AliasLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = importlib.import_module(_CURRENT + spec.name[len(_LEGACY) :])
        self._original_spec = module.__spec__
        return module

    def exec_module(self, module):
        # importlib stamped the alias spec on the module; give it back its own.
        module.__spec__ = self._original_spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(_LEGACY + "."):
            return None
        if importlib.util.find_spec(_CURRENT + fullname[len(_LEGACY) :]) is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader())


logging.getLogger(_LEGACY).warning("The d3a_api_client package name is deprecated; please import gsy_e_sdk instead.")
if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())
sys.modules[_LEGACY] = gsy_e_sdk
