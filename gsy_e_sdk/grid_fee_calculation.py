"""Grid fee along the path between two areas of the grid tree (SDK_API.md 8).

Every market on the trade path, including the one where the two paths meet, adds its fee once,
which is how the exchange charges fees.
"""

from __future__ import annotations

import logging
from typing import Any

from gsy_e_sdk.wire.grid_tree import FEE_TYPES, index_tree

logger = logging.getLogger(__name__)


class GridFeeCalculation:
    def __init__(self) -> None:
        self.latest_grid_stats_tree: dict[str, Any] = {}
        self.paths_to_root_mapping: dict[str, list[str]] = {}
        self.market_area_uuid_grid_fee_mapping: dict[str, dict[str, Any]] = {fee_type: {} for fee_type in FEE_TYPES}

    def handle_grid_stats(self, latest_grid_tree: dict[str, Any]) -> None:
        """Record every node's path from the root and every market's fees (only ever added to)."""
        self.latest_grid_stats_tree = latest_grid_tree
        index = index_tree(latest_grid_tree)
        for uuid, node in index.nodes.items():
            self.paths_to_root_mapping[uuid] = index.path(uuid)
            if not isinstance(node, dict):
                continue
            for fee_type, fees in self.market_area_uuid_grid_fee_mapping.items():
                if fee_type in node:
                    fees[uuid] = node[fee_type]

    def calculate_grid_fee(
        self,
        start_market_or_device_uuid: str,
        target_market_or_device_uuid: str | None = None,
        fee_type: str = "current_market_fee",
    ) -> float | None:
        """Total fee in ct/kWh from start to target; without a target, start's own market fee."""
        if fee_type not in FEE_TYPES:
            raise ValueError(f"fee_type must be one of {FEE_TYPES}, got {fee_type!r}")
        if not self.latest_grid_stats_tree:
            logger.error("Grid fees can not be calculated because there were no grid_stats sent yet.")
            return None
        fees = self.market_area_uuid_grid_fee_mapping[fee_type]
        start_path = self._path(start_market_or_device_uuid)
        if target_market_or_device_uuid is None:
            if start_market_or_device_uuid in fees:
                return fees[start_market_or_device_uuid]
            return fees.get(start_path[-2]) if len(start_path) > 1 else None
        target_path = self._path(target_market_or_device_uuid)
        target_nodes = set(target_path)
        meeting = start_path[-1]
        for index, uuid in enumerate(start_path):
            if uuid not in target_nodes:
                meeting = start_path[index - 1] if index else uuid
                break
        start_nodes = set(start_path)
        charged = (
            {meeting}
            | (start_nodes - target_nodes)
            | (target_nodes - start_nodes)
            | {start_market_or_device_uuid, target_market_or_device_uuid}
        )
        return sum(fees[uuid] for uuid in charged if fees.get(uuid) is not None)

    def _path(self, uuid: str) -> list[str]:
        try:
            return self.paths_to_root_mapping[uuid]
        except KeyError:
            raise ValueError(f"{uuid} is not an area of the grid tree") from None
