"""Other ways to say a supercategory noun, so that complex text is not "the kitchen item ..."
every time. Each alternate means exactly the supercategory (the lexical checker reads it as
such) and names none of its categories (engine/generate/template.py also checks that)."""
from __future__ import annotations

SUPER_ALTERNATES: dict[str, tuple[tuple[str, str], ...]] = {
    # (no "means of transport" for vehicle: a ridden horse is one too; judged on a rodeo photo)
    "animal": (("creature", "creatures"),),
    "accessory": (("personal accessory", "personal accessories"),),
    "sports": (("piece of sporting gear", "pieces of sporting gear"), ("sports item", "sports items")),
    "kitchen": (("piece of kitchenware", "pieces of kitchenware"), ("kitchen object", "kitchen objects")),
    "food": (("thing to eat", "things to eat"), ("kind of food", "kinds of food")),
    "furniture": (("item of furniture", "items of furniture"), ("furnishing", "furnishings")),
    "electronic": (("gadget", "gadgets"), ("electronic gadget", "electronic gadgets")),
    "appliance": (("household appliance", "household appliances"),),
    "indoor": (("household item", "household items"), ("indoor object", "indoor objects")),
}
ALTERNATE_SHARE = 0.5      # how often an alternate is said instead of the lexicon's noun
