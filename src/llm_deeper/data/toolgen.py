"""Many tools, held out by tool: 216 generated tool schemas over 24 domains, requests and results.

The built-in registry has ten runnable tools; a model trained only on them learns
"these ten names" rather than "read the signature, copy the values". This module
makes tools from two small tables, domains (flights, recipes, invoices, ...) and
actions (search, get details, book, cancel, ...): every pair is one tool with
typed parameters (strings, numbers, integers, booleans, enums, arrays, a nested
object, optional ones with defaults). A request names its argument values in
words that can be copied exactly ("for 3 guests", "under 250.5 dollars"), and a
plausible result lets the conversation go on to a plain-text answer.

Held out three ways: whole tools (two actions of each domain, 48 tools, never
appear in training, not even offered as distractors), phrasings (each action's
own train and test wordings) and values (even numbers and every other pool
entry for training, the rest for testing). Everything here is written for this
project; nothing is derived from BFCL or any other benchmark's data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def halves(items: list, split: str) -> list:
    """Deterministic disjoint pools: even positions for train, odd for test."""
    return items[0::2] if split == "train" else items[1::2]


def even_odd(rng: random.Random, split: str, low: int, high: int) -> int:
    """Train draws even numbers, test odd ones."""
    value = rng.randint(low, high)
    return value - value % 2 + (0 if split == "train" else 1)


@dataclass
class Domain:
    """One area of tools; each slot is (parameter name, values or range, words that mention a value as {v})."""

    entity: str  # singular noun in tool names and requests: "flight"
    plural: str  # "flights"
    key: tuple[str, list[str], str]  # the main descriptor: ("destination", [cities], "to {v}")
    count: tuple[str, int, int, str]  # an integer: ("passengers", 1, 9, "for {v} passengers")
    amount: tuple[str, int, int, str]  # a number, said with one decimal: ("max_price", 50, 900, "under {v} dollars")
    choice: tuple[str, list[str], str]  # an enum: ("cabin", ["economy", "business", "first"], "in {v} class")
    flag: tuple[str, str]  # a boolean set only when said: ("nonstop", "nonstop only")
    tags: tuple[str, list[str], str]  # an array of strings, two said: ("airlines", [...], "with {a} or {b}")


CITIES = ["Lisbon", "Oslo", "Denver", "Kyoto", "Lima", "Austin", "Porto", "Hanoi", "Seville", "Perth", "Zurich", "Accra",
          "Bergen", "Quito", "Leeds", "Tulsa"]
NAMES = ["Ana Silva", "Ben Okafor", "Chloe Martin", "Dev Patel", "Eva Novak", "Felix Wong", "Grace Kim", "Hugo Berg",
         "Iris Haddad", "Jonas Weber", "Keiko Sato", "Luis Ortega"]

DOMAINS = [
    Domain("flight", "flights", ("destination", CITIES, "to {v}"), ("passengers", 1, 9, "for {v} passengers"),
           ("max_price", 80, 900, "under {v} dollars"), ("cabin", ["economy", "premium", "business", "first"], "in {v} class"),
           ("nonstop", "nonstop only"), ("airlines", ["Aerolux", "SkyNord", "BlueJet", "Andes Air", "Pacifica", "Orion"], "on {a} or {b}")),
    Domain("hotel", "hotels", ("city", CITIES, "in {v}"), ("guests", 1, 8, "for {v} guests"), ("max_rate", 60, 500, "at most {v} per night"),
           ("room_type", ["single", "double", "suite", "family"], "a {v} room"), ("breakfast", "with breakfast included"),
           ("amenities", ["pool", "gym", "spa", "parking", "sauna", "rooftop bar"], "with a {a} and a {b}")),
    Domain("restaurant", "restaurants", ("cuisine", ["Thai", "Peruvian", "Greek", "Ethiopian", "Korean", "Basque", "Lebanese", "Sichuan"], "{v} food"),
           ("party_size", 1, 12, "for a party of {v}"), ("max_price", 15, 120, "below {v} per person"),
           ("seating", ["indoor", "outdoor", "bar", "private"], "{v} seating"), ("vegan_options", "with vegan options"),
           ("neighborhoods", ["Old Town", "Riverside", "Harbor", "Midtown", "Uptown", "Docklands"], "in {a} or {b}")),
    Domain("recipe", "recipes", ("dish", ["lentil curry", "mushroom risotto", "fish tacos", "pumpkin soup", "falafel wrap", "apple crumble",
                                          "pad see ew", "shakshuka"], "for {v}"), ("servings", 1, 10, "serving {v}"),
           ("max_minutes", 10, 120, "ready in under {v} minutes"), ("difficulty", ["easy", "medium", "hard", "expert"], "at {v} difficulty"),
           ("gluten_free", "gluten-free"), ("exclude", ["nuts", "dairy", "eggs", "soy", "shellfish", "sesame"], "without {a} or {b}")),
    Domain("book", "books", ("author", ["Ursula Le Guin", "Chinua Achebe", "Italo Calvino", "Toni Morrison", "Haruki Murakami",
                                        "Jane Austen", "Ted Chiang", "Wislawa Szymborska"], "by {v}"), ("copies", 1, 20, "{v} copies"),
           ("max_price", 5, 60, "for less than {v} dollars"), ("format", ["hardcover", "paperback", "ebook", "audiobook"], "as a {v}"),
           ("signed", "signed by the author"), ("genres", ["fantasy", "poetry", "history", "mystery", "science", "travel"], "in {a} or {b}")),
    Domain("song", "songs", ("artist", ["Nina Simone", "Fela Kuti", "Björk", "Miles Davis", "Caetano Veloso", "Kate Bush", "Ali Farka Toure",
                                        "Joni Mitchell"], "by {v}"), ("limit", 1, 50, "{v} of them"), ("min_minutes", 2, 12, "longer than {v} minutes"),
           ("mood", ["calm", "upbeat", "melancholic", "energetic"], "that feel {v}"), ("explicit", "including explicit ones"),
           ("decades", ["1960s", "1970s", "1980s", "1990s", "2000s", "2010s"], "from the {a} or {b}")),
    Domain("stock", "stocks", ("ticker", ["ACME", "GLOBX", "NRTH", "VOLT", "ZENO", "KIWI", "BRKT", "ORBS"], "{v}"), ("shares", 1, 500, "{v} shares"),
           ("limit_price", 5, 900, "at a limit of {v}"), ("order_type", ["market", "limit", "stop", "trailing"], "as a {v} order"),
           ("after_hours", "in after-hours trading"), ("exchanges", ["NYSE", "NASDAQ", "LSE", "TSE", "Euronext", "ASX"], "on {a} or {b}")),
    Domain("package", "packages", ("tracking_number", ["PK4821", "PK7730", "PK1094", "PK5567", "PK3302", "PK8815", "PK2249", "PK6678"], "{v}"),
           ("boxes", 1, 15, "{v} boxes"), ("weight_kg", 1, 70, "weighing {v} kg"), ("speed", ["standard", "express", "overnight", "economy"], "by {v} shipping"),
           ("insured", "with insurance"), ("carriers", ["PostNord", "Fastway", "Cargoline", "Swiftship", "Parcelo", "Moveit"], "via {a} or {b}")),
    Domain("invoice", "invoices", ("client", ["Nordlicht GmbH", "Palm & Pine", "Quarry Labs", "Tessera Ltd", "Bluefin Co", "Marigold Inc",
                                              "Oakridge LLC", "Vela Studio"], "for {v}"), ("items", 1, 30, "with {v} line items"),
           ("total", 50, 9000, "totalling {v}"), ("currency", ["USD", "EUR", "GBP", "JPY"], "in {v}"), ("paid", "marked as paid"),
           ("cc_emails", ["ops@vela.io", "ap@oakridge.com", "finance@tessera.co", "billing@quarry.dev", "hi@bluefin.net", "kim@palm.io"], "copying {a} and {b}")),
    Domain("appointment", "appointments", ("doctor", ["Dr. Moreau", "Dr. Achterberg", "Dr. Osei", "Dr. Lindqvist", "Dr. Ramos", "Dr. Ito",
                                                      "Dr. Kowalski", "Dr. Mensah"], "with {v}"), ("duration", 10, 90, "lasting {v} minutes"),
           ("copay", 5, 80, "with a copay of {v}"), ("visit_type", ["checkup", "follow-up", "vaccination", "consultation"], "for a {v}"),
           ("telehealth", "as a video visit"), ("symptoms", ["cough", "fever", "headache", "back pain", "rash", "fatigue"], "about {a} and {b}")),
    Domain("movie", "movies", ("title", ["The Quiet Harbor", "Glass Mountains", "Northern Lights", "Paper Moons", "The Long Table", "Iron Orchard",
                                         "Salt and Sky", "Midnight Tram"], "\"{v}\""), ("tickets", 1, 10, "{v} tickets"),
           ("max_price", 6, 30, "under {v} each"), ("format", ["2D", "3D", "IMAX", "4DX"], "in {v}"), ("subtitles", "with subtitles"),
           ("cinemas", ["Rex", "Odeon Park", "Lumen", "Starlight", "Cineville", "Palace"], "at {a} or {b}")),
    Domain("car_rental", "car_rentals", ("pickup_city", CITIES, "in {v}"), ("days", 1, 21, "for {v} days"), ("max_daily_rate", 20, 200, "at most {v} a day"),
           ("car_class", ["compact", "sedan", "suv", "van"], "a {v}"), ("automatic", "with an automatic gearbox"),
           ("extras", ["child seat", "GPS", "roof box", "snow chains", "second driver", "wifi hotspot"], "with {a} and {b}")),
    Domain("parking", "parking_spots", ("zone", ["Zone A", "Zone B", "Zone C", "Zone D", "Zone E", "Zone F", "Zone G", "Zone H"], "in {v}"),
           ("hours", 1, 24, "for {v} hours"), ("max_fee", 2, 60, "under {v}"), ("vehicle", ["car", "motorbike", "van", "bicycle"], "for a {v}"),
           ("covered", "covered"), ("plates", ["KX-204", "LM-881", "QP-350", "ZT-912", "HB-447", "RN-606"], "for plates {a} and {b}")),
    Domain("thermostat", "thermostats", ("room", ["kitchen", "bedroom", "living room", "office", "hallway", "attic", "studio", "basement"], "in the {v}"),
           ("fan_level", 1, 5, "fan level {v}"), ("target_celsius", 15, 28, "to {v} degrees"), ("mode", ["heat", "cool", "auto", "eco"], "in {v} mode"),
           ("schedule_enabled", "following the schedule"), ("days", ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday"], "on {a} and {b}")),
    Domain("playlist", "playlists", ("name", ["Morning Run", "Deep Focus", "Rainy Sunday", "Road Trip", "Dinner Jazz", "Late Night", "Gym Mix",
                                              "Study Beats"], "called \"{v}\""), ("track_count", 5, 80, "with {v} tracks"),
           ("max_hours", 1, 10, "no longer than {v} hours"), ("visibility", ["public", "private", "unlisted", "friends"], "as {v}"),
           ("shuffle", "on shuffle"), ("genres", ["jazz", "techno", "folk", "soul", "ambient", "reggae"], "mixing {a} and {b}")),
    Domain("transfer", "transfers", ("recipient", NAMES, "to {v}"), ("installments", 1, 12, "in {v} installments"), ("amount", 10, 5000, "of {v}"),
           ("currency", ["USD", "EUR", "GBP", "CHF"], "in {v}"), ("instant", "as an instant transfer"),
           ("references", ["rent", "dinner", "tickets", "deposit", "gift", "refund"], "with references {a} and {b}")),
    Domain("course", "courses", ("subject", ["linear algebra", "pottery", "Spanish", "statistics", "welding", "photography", "Mandarin",
                                             "bookkeeping"], "in {v}"), ("seats", 1, 6, "{v} seats"), ("max_fee", 20, 800, "under {v}"),
           ("level", ["beginner", "intermediate", "advanced", "expert"], "at {v} level"), ("online", "taught online"),
           ("weekdays", ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday"], "on {a} or {b}")),
    Domain("job", "jobs", ("role", ["data analyst", "nurse", "carpenter", "pastry chef", "translator", "electrician", "UX designer",
                                    "lab technician"], "as a {v}"), ("min_years", 0, 15, "needing {v} years of experience"),
           ("min_salary", 20000, 150000, "paying at least {v}"), ("contract", ["full-time", "part-time", "contract", "internship"], "{v}"),
           ("remote", "fully remote"), ("skills", ["Excel", "SQL", "welding", "French", "CAD", "first aid"], "requiring {a} and {b}")),
    Domain("train", "trains", ("to_station", ["Lyon Part-Dieu", "Milano Centrale", "Wien Hbf", "Gent Sint-Pieters", "Kraków Główny", "Bern",
                                              "Utrecht Centraal", "Bologna Centrale"], "to {v}"), ("travellers", 1, 8, "for {v} travellers"),
           ("max_fare", 10, 300, "under {v}"), ("seat_class", ["first", "second", "sleeper", "couchette"], "in {v} class"),
           ("bikes", "with room for bikes"), ("via", ["Basel", "Munich", "Brussels", "Verona", "Prague", "Cologne"], "via {a} and {b}")),
    Domain("gym_class", "gym_classes", ("activity", ["spinning", "pilates", "boxing", "yoga", "rowing", "zumba", "climbing", "barre"], "for {v}"),
           ("spots", 1, 4, "{v} spots"), ("max_minutes", 20, 90, "under {v} minutes"), ("intensity", ["low", "moderate", "high", "extreme"], "at {v} intensity"),
           ("waitlist", "joining the waitlist if full"), ("trainers", ["Coach Ada", "Coach Rui", "Coach Mel", "Coach Tariq", "Coach Bea", "Coach Lin"], "with {a} or {b}")),
    Domain("support_ticket", "support_tickets", ("product", ["router X2", "smart lock", "e-bike", "coffee grinder", "laptop dock", "robot vacuum",
                                                             "solar charger", "baby monitor"], "about the {v}"), ("attachments", 1, 5, "with {v} attachments"),
           ("order_total", 20, 2000, "for an order of {v}"), ("priority", ["low", "normal", "high", "urgent"], "at {v} priority"),
           ("under_warranty", "under warranty"), ("labels", ["billing", "hardware", "shipping", "setup", "refund", "firmware"], "labelled {a} and {b}")),
    Domain("plant", "plants", ("species", ["monstera", "fiddle leaf fig", "snake plant", "basil", "lavender", "tomato", "orchid", "fern"], "the {v}"),
           ("pots", 1, 12, "{v} pots"), ("water_liters", 1, 20, "with {v} liters of water"), ("light", ["shade", "partial", "bright", "direct"], "in {v} light"),
           ("indoor", "kept indoors"), ("nutrients", ["nitrogen", "potassium", "iron", "calcium", "magnesium", "phosphorus"], "adding {a} and {b}")),
    Domain("vehicle_service", "vehicle_services", ("plate", ["AB-123-CD", "XY-908-KL", "MN-456-OP", "QR-771-ST", "UV-310-WX", "GH-642-JK",
                                                             "EF-285-LM", "CD-519-RS"], "for {v}"), ("mileage_k", 5, 300, "at {v} thousand km"),
           ("budget", 50, 3000, "within {v}"), ("service", ["oil change", "inspection", "tire swap", "brake check"], "an {v}"),
           ("loan_car", "with a loan car"), ("parts", ["wipers", "battery", "brake pads", "air filter", "spark plugs", "headlight"], "replacing the {a} and the {b}")),
    Domain("event_ticket", "event_tickets", ("event", ["Harbor Jazz Night", "City Marathon", "Robot Expo", "Spring Opera Gala", "Indie Game Fair",
                                                       "Street Food Fest", "Chess Open", "Poetry Slam"], "for {v}"), ("quantity", 1, 10, "{v} tickets"),
           ("max_price", 10, 400, "under {v} each"), ("section", ["floor", "balcony", "box", "standing"], "in the {v} section"),
           ("accessible", "with accessible seating"), ("add_ons", ["parking pass", "program", "meet and greet", "t-shirt", "drink voucher", "poster"], "with a {a} and a {b}")),
]

# Each action makes one tool per domain; slot roles: key, count, amount, choice, flag, tags (the domain's),
# id (a reference like "FLI-2042"), contact and window (nested objects), note (a reason), limit, stars, date.
# "!" marks a required slot.
# (tool name, description, slots, train lead-ins, test lead-ins, result kind); {e}/{p} = entity/plural words.
ACTIONS = [
    ("search_{p}", "Search {p} matching the given criteria.", ["!key", "count", "amount", "choice", "flag", "tags"],
     ["Find {p}", "Search for {p}", "Look up {p}", "Show me {p}"], ["I'm looking for {p}", "Any {p}"], "list"),
    ("get_{e}_details", "Get the full details of one {e} by its reference.", ["!id", "flag"],
     ["Get the details of {e}", "Show me {e}", "Pull up {e}"], ["What are the details of {e}", "Open {e}"], "details"),
    ("book_{e}", "Book a {e} for someone.", ["!key", "!count", "choice", "contact", "tags"],
     ["Book a {e}", "Reserve a {e}", "Make a {e} booking"], ["Please arrange a {e}", "Set me up with a {e}"], "created"),
    ("cancel_{e}", "Cancel an existing {e} booking.", ["!id", "note", "flag"],
     ["Cancel {e}", "Call off {e}", "Drop {e}"], ["I need to cancel {e}", "Scrap {e}"], "cancelled"),
    ("update_{e}", "Change an existing {e}.", ["!id", "count", "choice", "amount"],
     ["Update {e}", "Change {e}", "Modify {e}"], ["Please amend {e}", "Adjust {e}"], "updated"),
    ("estimate_{e}_cost", "Estimate what a {e} would cost.", ["!key", "!count", "choice", "flag"],
     ["Estimate the cost of a {e}", "How much would a {e} cost", "Quote me a {e}"], ["What's the price estimate for a {e}", "Give me a cost estimate for a {e}"], "cost"),
    ("list_{p}", "List the user's saved {p}, newest first.", ["choice", "tags", "limit"],
     ["List my {p}", "Show all my {p}", "Which {p} do I have"], ["Give me an overview of my {p}", "Enumerate my {p}"], "list"),
    ("rate_{e}", "Rate a {e} from 1 to 5 stars.", ["!id", "!stars", "flag"],
     ["Rate {e}", "Give a rating to {e}", "Score {e}"], ["Leave a rating for {e}", "Review {e}"], "rated"),
    ("check_{e}_availability", "Check whether a {e} is available on a date.", ["!key", "!date", "count", "window"],
     ["Check availability of a {e}", "Is there a {e} available", "Can I get a {e}"], ["See if a {e} is free", "Check if a {e} is open"], "availability"),
]
HELD_OUT_ACTIONS = 2  # per domain, rotating: 2 x 24 = 48 tools only the test split ever sees


@dataclass
class GenTool:
    """One generated tool: its schema and how to ask for it."""

    name: str  # e.g. "book_hotel"
    domain: Domain
    action: tuple  # the ACTIONS row it came from
    schema: dict  # OpenAI tool definition
    slots: list[str]  # slot roles, "!" for required
    split: str  # "train" or "test": the split whose requests use it


def words(domain: Domain, plural: bool = False) -> str:
    return (domain.plural if plural else domain.entity).replace("_", " ")


def _param(domain: Domain, role: str) -> tuple[str, dict]:
    """(parameter name, JSON schema) of one slot role in one domain."""
    if role == "key":
        return domain.key[0], {"type": "string", "description": f"The {domain.key[0].replace('_', ' ')}."}
    if role == "count":
        return domain.count[0], {"type": "integer", "minimum": 0, "default": 1}
    if role == "amount":
        return domain.amount[0], {"type": "number", "minimum": 0}
    if role == "choice":
        return domain.choice[0], {"type": "string", "enum": domain.choice[1]}
    if role == "flag":
        return domain.flag[0], {"type": "boolean", "default": False}
    if role == "tags":
        return domain.tags[0], {"type": "array", "items": {"type": "string"}}
    if role == "id":
        return f"{domain.entity}_id", {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}
    if role == "contact":
        return "contact", {"type": "object", "properties": {"name": {"type": "string"}, "phone": {"type": "string"}}, "required": ["name"]}
    if role == "window":
        return "window", {"type": "object", "properties": {"start": {"type": "string"}, "end": {"type": "string"}}, "required": ["start", "end"]}
    if role == "note":
        return "reason", {"type": "string"}
    if role == "limit":
        return "limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}
    if role == "stars":
        return "stars", {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    if role == "date":
        return "date", {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "description": "YYYY-MM-DD"}
    raise ValueError(role)


def make_tools() -> list[GenTool]:
    """Every domain × action, in a fixed order; two actions per domain (rotating) held out for testing."""
    tools = []
    for d, domain in enumerate(DOMAINS):
        held = {(d + k) % len(ACTIONS) for k in range(HELD_OUT_ACTIONS)}
        for a, action in enumerate(ACTIONS):
            name_pattern, description, slots = action[0], action[1], action[2]
            name = name_pattern.format(e=domain.entity, p=domain.plural)
            properties, required = {}, []
            for slot in slots:
                pname, pschema = _param(domain, slot.lstrip("!"))
                properties[pname] = pschema
                if slot.startswith("!"):
                    required.append(pname)
            schema = {"type": "function", "function": {"name": name, "description": description.format(e=words(domain), p=words(domain, True)),
                                                        "parameters": {"type": "object", "properties": properties, "required": required}}}
            tools.append(GenTool(name, domain, action, schema, slots, "test" if a in held else "train"))
    return tools


TOOLS = make_tools()


def tools_of(split: str) -> list[GenTool]:
    return [t for t in TOOLS if t.split == split]


def _value(rng: random.Random, split: str, tool: GenTool, role: str):
    """(argument value, the words that say it) for one slot."""
    d = tool.domain
    if role == "key":
        value = rng.choice(halves(d.key[1], split))
        return value, d.key[2].format(v=value)
    if role == "count":
        value = max(1, even_odd(rng, split, d.count[1], d.count[2]))
        return value, d.count[3].format(v=value)
    if role == "amount":
        value = even_odd(rng, split, d.amount[1], d.amount[2]) + rng.choice([0, 0.5])
        return value, d.amount[3].format(v=value)
    if role == "choice":
        value = rng.choice(d.choice[1])
        return value, d.choice[2].format(v=value)
    if role == "flag":
        return True, d.flag[1]
    if role == "tags":
        pair = rng.sample(halves(d.tags[1], split), 2)
        return pair, d.tags[2].format(a=pair[0], b=pair[1])
    if role == "id":
        value = f"{d.entity[:3].upper()}-{even_odd(rng, split, 1000, 9998)}"
        return value, value
    if role == "contact":
        name = rng.choice(halves(NAMES, split))
        if rng.random() < 0.5:
            return {"name": name}, f"for {name}"
        phone = f"+1 555 01{even_odd(rng, split, 10, 98)}"
        return {"name": name, "phone": phone}, f"for {name} (phone {phone})"
    if role == "window":
        start = rng.choice(["08:00", "09:30", "10:00", "13:30"] if split == "train" else ["08:30", "11:00", "14:00", "15:30"])
        end = f"{int(start[:2]) + rng.choice([2, 3, 4]):02d}:{start[3:]}"
        return {"start": start, "end": end}, f"between {start} and {end}"
    if role == "note":
        value = rng.choice(halves(["plans changed", "found a better option", "double booked", "feeling unwell", "too expensive",
                                   "trip postponed", "wrong date", "no longer needed"], split))
        return value, f"because {value}"
    if role == "limit":
        value = even_odd(rng, split, 2, 30)
        return value, f"(top {value})"
    if role == "stars":
        value = rng.randint(1, 5)
        return value, f"{value} stars"
    if role == "date":
        value = f"2026-{rng.randint(1, 12):02d}-{even_odd(rng, split, 1, 27):02d}"
        return value, f"on {value}"
    raise ValueError(role)


def make_request(rng: random.Random, split: str, tool: GenTool) -> tuple[str, dict]:
    """(user request, the call's arguments): required slots always said, each optional one half the time."""
    d = tool.domain
    lead = rng.choice(tool.action[3] if split == "train" else tool.action[4]).format(e=words(d), p=words(d, True))
    arguments, phrases = {}, []
    for slot in tool.slots:
        role = slot.lstrip("!")
        if not slot.startswith("!") and rng.random() < 0.5:
            continue
        value, said = _value(rng, split, tool, role)
        arguments[_param(d, role)[0]] = value
        phrases.append(said)
    text = " ".join([lead] + phrases).strip()
    return text + ("?" if lead.split()[0].lower() in {"how", "is", "can", "which", "what", "any"} else "."), arguments


def make_result(rng: random.Random, tool: GenTool, arguments: dict) -> tuple[dict, str]:
    """(a plausible result, the assistant's answer that reports it)."""
    d, kind = tool.domain, tool.action[5]
    noun, nouns = words(d), words(d, True)
    ref = arguments.get(f"{d.entity}_id") or f"{d.entity[:3].upper()}-{rng.randint(1000, 9999)}"
    if kind == "list":
        count = rng.randint(0, 4)
        items = [{"id": f"{d.entity[:3].upper()}-{rng.randint(1000, 9999)}", d.key[0]: rng.choice(d.key[1])} for _ in range(count)]
        answer = (f"I found {count} {nouns if count != 1 else noun}; the first is {items[0]['id']} ({items[0][d.key[0]]})." if count
                  else f"I found no {nouns} matching that.")
        return {"count": count, "results": items}, answer
    if kind == "details":
        status = rng.choice(["confirmed", "pending", "completed"])
        return {"id": ref, "status": status, d.key[0]: rng.choice(d.key[1])}, f"{ref} is {status}."
    if kind == "created":
        return {"id": ref, "status": "confirmed"}, f"Done: your {noun} is booked, reference {ref}."
    if kind == "cancelled":
        return {"id": ref, "status": "cancelled"}, f"{ref} is cancelled."
    if kind == "updated":
        changed = ", ".join(k for k in arguments if k != f"{d.entity}_id") or "nothing"
        return {"id": ref, "status": "updated", "changed": [k for k in arguments if k != f"{d.entity}_id"]}, f"{ref} is updated ({changed})."
    if kind == "cost":
        cost = round(rng.uniform(20, 2000), 2)
        return {"estimate": cost, "currency": "USD"}, f"That would cost about {cost} USD."
    if kind == "rated":
        return {"id": ref, "stars": arguments.get("stars"), "saved": True}, f"Saved: {ref} rated {arguments.get('stars')} stars."
    available = rng.random() < 0.6
    return {"available": available, "date": arguments.get("date")}, (f"Yes, a {noun} is available on {arguments.get('date')}." if available
                                                                    else f"Sorry, no {noun} is available on {arguments.get('date')}.")


def offer(rng: random.Random, pool: list[GenTool], needed: list[GenTool], distractors: int) -> list[dict]:
    """Schemas of the needed tools plus distractors from `pool`, shuffled."""
    names = {t.name for t in needed}
    chosen = list(needed) + rng.sample([t for t in pool if t.name not in names], distractors)
    rng.shuffle(chosen)
    return [t.schema for t in chosen]


def cannot(tool: GenTool) -> str:
    """What the assistant says when no offered tool does what `tool` would."""
    verb = tool.name.split("_")[0]
    return f"None of the tools I have here can {verb} {words(tool.domain, True)}, so I can't do that for you."
