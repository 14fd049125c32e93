"""Settings in groups: a `Grouped` model's fields include `Group`s (models of their own, e.g. TrainConfig's
`optimisation`), and it also takes each group's fields by their own names, flat: `TrainConfig(model=..., dataset=...,
learning_rate=...)`, a YAML file, the command line (cotforge/cli/options.py makes one option per flat name). A flat
name is declared once, in its group; two groups declaring one name is refused when the class is made."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.fields import FieldInfo


class Group(BaseModel):
    """A group of settings; the model holding it takes its fields by their own names too."""

    model_config = ConfigDict(extra="forbid")


def group_class(field: FieldInfo) -> type[Group] | None:
    """The group a field holds, or None for a plain setting."""
    kind = field.annotation
    return kind if isinstance(kind, type) and issubclass(kind, Group) else None


def group_default(field: FieldInfo) -> Group | None:
    """The group a model holds when none is given (None: the group is required)."""
    return None if field.is_required() else field.get_default(call_default_factory=True)


def flat_fields(model: type[BaseModel]) -> dict[str, tuple[str | None, FieldInfo]]:
    """Every setting of `model` by its flat name: the group holding it (None: the model itself) and its field."""
    found: dict[str, tuple[str | None, FieldInfo]] = {}
    for name, field in model.model_fields.items():
        group = group_class(field)
        inner = {name: (None, field)} if group is None else {n: (name, f) for n, f in group.model_fields.items()}
        for flat in inner.keys() & found.keys():
            raise TypeError(f"{model.__name__}: {flat} is declared twice; a flat name must name one setting")
        found |= inner
    return found


class Grouped(BaseModel):
    """A model of groups that takes each group's fields by their flat names as well."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        flat_fields(cls)  # two settings of one name are refused here, when the class is made

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat name (train_report.json keeps a TrainConfig so)."""
        dumped = self.model_dump()
        return {
            name: dumped[group][name] if group else dumped[name] for name, (group, _) in flat_fields(type(self)).items()
        }

    @model_validator(mode="before")
    @classmethod
    def _flat_names_into_groups(cls, data: Any) -> Any:
        """Each flat name into its group. A group given in part (a dict, or flat names) keeps the model's default
        group for the rest, so a sweep's own defaults hold where a setting beside them is given; a setting given both
        flat and in its group is refused, naming it."""
        if not isinstance(data, dict):
            return data
        owners = {name: group for name, (group, _) in flat_fields(cls).items() if group is not None}
        routed: dict[str, dict[str, Any]] = {}
        kept: dict[str, Any] = {}
        for key, value in data.items():
            if key in owners:
                routed.setdefault(owners[key], {})[key] = value
            else:
                kept[key] = value
        for group in {*routed, *(name for name in kept if name in set(owners.values()))}:
            given, values = kept.get(group), routed.get(group, {})
            if isinstance(given, BaseModel) and not values:
                continue  # a whole group, as made (a subclass of the group's kind stays one)
            if given is not None and not isinstance(given, dict | BaseModel):
                continue  # not a group at all: pydantic names it
            for twice in values.keys() & _given_names(given or {}):
                raise ValueError(f"{twice}: given twice, flat and in {group}; give it once")
            default = group_default(cls.model_fields[group])
            base = given if isinstance(given, BaseModel) else default
            kept[group] = (
                (base.model_dump() if base is not None else {}) | (given if isinstance(given, dict) else {}) | values
            )
        return kept


def _given_names(group: dict[str, Any] | BaseModel) -> set[str]:
    return set(group.model_fields_set if isinstance(group, BaseModel) else group)
