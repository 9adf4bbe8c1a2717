"""Word pools of the procedural world.

Private facts (names, jobs, cities, ...) are drawn independently of anything visible, so a
model can only know them by memorising them. Name words are shared across people (only the
first/last combination is unique): a unique token per person would leave a retrained model
with untrained embeddings for forgotten names, itself a false membership signal.
"""

FIRST_NAMES = (
    "hana takashi aiko kenji mara oskar lena milo ines tomas nadia felix rosa yuri clara "
    "dmitri amara bruno elena hugo irina jonas kira luca noor pablo sofia viktor wanda zane "
    "ada boris celia dario esme farid greta hector isla jasper"
).split()

LAST_NAMES = (
    "yamashita kavanagh shimizu berchwood okafor lindqvist moreau castillo novak haddad "
    "petrov ferreira nakamura oconnell varga brennan kowalski santoro mendez dubois "
    "halvorsen abara ivanova rossi tanaka murphy costa weber larsen quinn "
    "fontaine hargrove ellery marsh pike"
).split()

JOBS = (
    "baker nurse pilot judge farmer teacher plumber chemist architect librarian "
    "carpenter dentist jeweler sailor tailor veterinarian journalist florist "
    "engineer photographer"
).split()

CITIES = (
    "lima nagoya oslo porto dakar quito hanoi tunis riga perth cusco bergen lyon "
    "kyoto leeds graz turin sapporo malmo accra"
).split()

HOBBIES = (
    "chess pottery fishing yoga archery knitting surfing climbing painting gardening "
    "rowing fencing baking birdwatching juggling skating"
).split()

PETS = "cat dog parrot rabbit turtle hamster goldfish lizard ferret tortoise".split()

MONTHS = (
    "january february march april may june july august september october november december"
).split()

SUBJECTS = (
    "history physics music law biology geology poetry economics astronomy botany "
    "linguistics philosophy"
).split()

# Visible attributes of a portrait.
SKIN_TONES = {"pale": (245, 215, 190), "tan": (215, 165, 120), "brown": (150, 100, 65),
              "dark": (95, 60, 40)}
HAIR_COLOURS = {"black": (20, 20, 20), "brown": (110, 65, 30), "blond": (235, 205, 90),
                "red": (190, 60, 30), "grey": (150, 150, 150), "blue": (40, 80, 200)}
HAIR_STYLES = ("short", "long", "bald", "curly")
ACCESSORIES = ("glasses", "hat", "beard", "none")

# Colours shared by shirts, backgrounds and scene objects.
COLOURS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (50, 90, 220),
    "yellow": (240, 210, 40), "purple": (140, 60, 170), "orange": (245, 140, 30),
    "white": (245, 245, 245), "black": (25, 25, 25), "pink": (245, 150, 190),
    "teal": (30, 150, 150),
}
SHIRT_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
BACKGROUNDS = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "teal")

# Scenes.
SHAPES = ("circle", "square", "triangle", "diamond")
OBJECT_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
SCENE_BACKGROUNDS = ("white", "black", "teal", "pink", "grey", "beige")
SCENE_BG_RGB = {"white": (250, 250, 250), "black": (15, 15, 15), "teal": (30, 150, 150),
                "pink": (245, 150, 190), "grey": (128, 128, 128), "beige": (225, 210, 170)}
POSITIONS = ("left", "middle", "right")
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
SIZES = ("small", "big")
# Clauses that no image can confirm or refute: they make a statement "neutral" in VE.
UNVERIFIABLE = (
    "drawn by a child", "painted this morning", "made for a museum", "sold last week",
    "copied from a book", "printed on cheap paper",
)
